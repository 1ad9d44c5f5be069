"""The chapter's data sets: XOR (§5), Auto MPG (§7), MNIST (§8)."""
