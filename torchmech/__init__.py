"""torchmech: Chapter 13, "Going Deeper - The Mechanics of PyTorch", as executable claims.

Each module holds one mechanism of the chapter; ``tests/`` walks the chapter in order.
"""

__version__ = "0.1.0"

#: The chapter's sections, keyed by the pytest marker that tags their tests.
SECTIONS: dict[str, str] = {
    "s1": "§1 Computation graphs",
    "s2": "§2 Tensors that hold parameters",
    "s3": "§3 Gradients by automatic differentiation",
    "s4": "§4 torch.nn: Sequential, losses, optimizers",
    "s5": "§5 XOR and model capacity",
    "s6": "§6 nn.Module subclasses and custom layers",
    "s7": "§7 Project one: fuel efficiency (Auto MPG)",
    "s8": "§8 Project two: MNIST digits",
    "s9": "§9 PyTorch Lightning and TensorBoard",
    "chapter": "Whole chapter: CLI and report",
}
