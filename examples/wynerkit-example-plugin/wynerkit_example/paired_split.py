"""``PairedSplit``: one split held in memory, fetched one ``Pair`` or one batch at a time."""

from __future__ import annotations

import torch

from wynerkit import Pair


class PairedSplit(torch.utils.data.Dataset):
    """Pair i is ``(x[i], y[i])``, both labelled ``labels[i]``; both datasets of this plugin use it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> None:
        self.x, self.y, self.labels = x, y, labels

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: int) -> Pair:
        """One ``Pair``: x of ``x_shape``, y of ``y_shape``, and the labels as ints."""
        label = int(self.labels[index])
        return {"x": self.x[index], "y": self.y[index], "x_label": label, "y_label": label}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """One batched Pair: x ``[B, *x_shape]``, y ``[B, *y_shape]``, int64 labels ``[B]``, in ``indices``' order."""
        rows = torch.as_tensor(indices, dtype=torch.long)
        labels = self.labels[rows]
        return {"x": self.x[rows], "y": self.y[rows], "x_label": labels, "y_label": labels.clone()}
