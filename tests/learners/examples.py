"""The wrong answers the grader issue lists, each written from the exercise's task text as a learner would
(module → source), with the words its diagnosis must contain. Planted in a scratch workspace by the tests."""

from __future__ import annotations

HEAD = "import math\n\nimport numpy as np\nimport torch\nfrom torch import nn\n\n"

#: name → (section module, source of the piece, words the failure must contain)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "bce_over_rows": ("s4_nn", '''
def bce_logit_grad(z, y):
    return (torch.sigmoid(z) - y) / z.shape[0]
''', "yours = expected × the number of elements per row"),
    "mse_over_len": ("s4_nn", '''
def mse_grad(pred, y):
    return 2 * (pred - y) / len(pred)
''', "yours = expected × the number of elements per row"),
    "noise_one_row": ("s6_modules", '''
class NoisyLinear(nn.Module):
    def __init__(self, input_size, output_size, noise_stddev=0.1):
        super().__init__()
        self.w = nn.Parameter(torch.Tensor(input_size, output_size))
        nn.init.xavier_uniform_(self.w)
        self.b = nn.Parameter(torch.Tensor(output_size).fill_(0))
        self.noise_stddev = noise_stddev

    def forward(self, x, training=None):
        if training is None:
            training = self.training
        if training:
            noise = torch.normal(0.0, self.noise_stddev, (1, x.shape[-1]), dtype=x.dtype, device=x.device)
            x = x + noise
        return torch.add(torch.matmul(x, self.w), self.b)
''', "every row of the batch gets its own noise: expected yes, yours no"),
    "train_mode_once": ("s5_xor", '''
from torchmech.chapter.train import History


def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, correct=None,
          device="cpu", on_epoch_end=None):
    history = History()
    model.train()
    for epoch in range(num_epochs):
        total, right, n = 0.0, 0, 0
        for x, y in train_batches:
            pred = model(x)
            if y.dim() == 1 and pred.dim() == 2 and pred.shape[1] == 1:
                pred = pred[:, 0]
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
            if correct is not None:
                right += int(correct(pred.detach(), y))
            n += len(y)
        history.train_loss.append(total / len(train_batches))
        if correct is not None:
            history.train_acc.append(right / n)
        if valid_batches is not None:
            model.eval()
            total, right, n = 0.0, 0, 0
            with torch.no_grad():
                for x, y in valid_batches:
                    pred = model(x)
                    if y.dim() == 1 and pred.dim() == 2 and pred.shape[1] == 1:
                        pred = pred[:, 0]
                    total += loss_fn(pred, y).item()
                    if correct is not None:
                        right += int(correct(pred, y))
                    n += len(y)
            history.valid_loss.append(total / len(valid_batches))
            if correct is not None:
                history.valid_acc.append(right / n)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history
''', "after the first validation the model stays in eval mode"),
    "order_in_init": ("s8_mnist", '''
class ShuffledBatches:
    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size
        torch.empty((), dtype=torch.int64).random_()
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            idx = self.perm[i:i + self.batch_size]
            yield self.x[idx], self.y[idx]
''', "the same order in every epoch"),
    "log_softmax_end": ("s8_mnist", '''
def mnist_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                         nn.Linear(16, 10), nn.LogSoftmax(dim=1))
''', "yours adds LogSoftmax(dim=1) at the end"),
    "xor_swapped": ("s5_xor", '''
from torchmech.chapter.data.xor import XorData


def make_xor(n=200, seed=1):
    np.random.seed(seed)
    x = np.random.uniform(low=-1, high=1, size=(n, 2))
    y = np.ones(len(x))
    y[x[:, 0] * x[:, 1] < 0] = 0
    half = n // 2
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    return XorData(x, y, t(x[half:]), t(y[half:]), t(x[:half]), t(y[:half]))
''', "holds what `x_valid` should hold"),
    "fgsm_clamp_first": ("s3_autodiff", '''
def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
    x = x.clone().detach()
    if clamp is not None:
        x = torch.clamp(x, clamp[0], clamp[1])
    x.requires_grad_(True)
    loss = loss_fn(model(x), y)
    grad, = torch.autograd.grad(loss, x)
    return (x + epsilon * grad.sign()).detach()
''', "every value of the result within clamp: expected yes, yours no"),
    "shared_accuracy": ("s9_lightning", '''
import lightning.pytorch as pl
from torchmetrics import Accuracy


class MultiLayerPerceptron(pl.LightningModule):
    def __init__(self, image_shape=(1, 28, 28), hidden_units=(32, 16)):
        super().__init__()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.valid_acc = self.train_acc
        self.test_acc = Accuracy(task="multiclass", num_classes=10)
        layers = [nn.Flatten()]
        size = image_shape[0] * image_shape[1] * image_shape[2]
        for h in hidden_units:
            layers += [nn.Linear(size, h), nn.ReLU()]
            size = h
        layers.append(nn.Linear(size, 10))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)

    def _step(self, batch, metric, stage):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        metric.update(torch.argmax(logits, dim=1), y)
        self.log(f"{stage}_loss", loss, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, self.train_acc, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, self.valid_acc, "valid")

    def test_step(self, batch, batch_idx):
        return self._step(batch, self.test_acc, "test")

    def on_train_epoch_end(self):
        self.log("train_acc", self.train_acc.compute())
        self.train_acc.reset()

    def on_validation_epoch_end(self):
        self.log("valid_acc", self.valid_acc.compute())
        self.valid_acc.reset()

    def on_test_epoch_end(self):
        self.log("test_acc", self.test_acc.compute())
        self.test_acc.reset()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.001)
''', "one Accuracy object per stage (train_acc, valid_acc, test_acc): expected yes, yours no"),
    "year_raw": ("s7_auto_mpg", '''
from sklearn.model_selection import train_test_split

from torchmech.chapter.data.auto_mpg import NUMERIC, MpgData, load_auto_mpg


def mpg_features(df=None, train_size=0.8, random_state=1):
    df = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
    df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
    stats = df_train.describe().transpose()
    out = []
    for part in (df_train.copy(), df_test.copy()):
        for col in NUMERIC:
            part[col] = (part[col] - stats.loc[col, "mean"]) / stats.loc[col, "std"]
        year = torch.tensor(part["Model Year"].values)
        origin = nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
        x = torch.cat([torch.tensor(part[NUMERIC].values), year[:, None], origin], 1).float()
        out += [x, torch.tensor(part["MPG"].values).float()]
    return MpgData(*out, train_stats=stats)
''', "only column 5 differs"),
    "predict_bool": ("s6_modules", '''
class ModuleListModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.module_list = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(),
                                          nn.Linear(4, 1), nn.Sigmoid()])

    def forward(self, x):
        for f in self.module_list:
            x = f(x)
        return x

    def predict(self, x):
        numpy_in = isinstance(x, np.ndarray)
        x = torch.tensor(x, dtype=torch.float32)
        with torch.no_grad():
            pred = self.forward(x)[:, 0] >= 0.5
        return pred.numpy() if numpy_in else pred
''', "bool where float32 is expected"),
    "compute_z_in_place_on_a_minus_b": ("s1_graph", '''
def compute_z(a, b, c):
    r = torch.sub(a, b)
    r.mul_(2)
    r.add_(c)
    return r
''', "float32 where float64 is expected"),
    "compute_z_in_place_cast_first": ("s1_graph", '''
def compute_z(a, b, c):
    z = torch.sub(a, b).to(torch.result_type(a, c))  # the dtype the sum will have
    z *= 2
    z += c
    return z
''', "doesn't match the broadcast shape [2, 3]"),
    "accuracy_never_reset": ("s9_lightning", '''
import lightning.pytorch as pl
from torchmetrics import Accuracy


class MultiLayerPerceptron(pl.LightningModule):
    def __init__(self, image_shape=(1, 28, 28), hidden_units=(32, 16)):
        super().__init__()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.valid_acc = Accuracy(task="multiclass", num_classes=10)
        self.test_acc = Accuracy(task="multiclass", num_classes=10)
        input_size = image_shape[0] * image_shape[1] * image_shape[2]
        all_layers = [nn.Flatten()]
        for hidden_unit in hidden_units:
            all_layers += [nn.Linear(input_size, hidden_unit), nn.ReLU()]
            input_size = hidden_unit
        all_layers.append(nn.Linear(hidden_units[-1], 10))
        self.model = nn.Sequential(*all_layers)

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.train_acc.update(torch.argmax(logits, dim=1), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.valid_acc.update(torch.argmax(logits, dim=1), y)
        self.log("valid_loss", loss, prog_bar=True)
        return loss

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.test_acc.update(torch.argmax(logits, dim=1), y)
        self.log("test_loss", loss, prog_bar=True)
        return loss

    def on_train_epoch_end(self):
        self.log("train_acc", self.train_acc.compute())

    def on_validation_epoch_end(self):
        self.log("valid_acc", self.valid_acc.compute())

    def on_test_epoch_end(self):
        self.log("test_acc", self.test_acc.compute())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.001)
''', "the metric is not reset after it is logged"),
}
