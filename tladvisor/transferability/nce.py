"""NCE: negative conditional entropy of target labels given source labels (Tran et al., ICCV 2019).

With Z (N,) the source label of each example (for a classifier head: the argmax of its softmax) and
Y (N,) the target label, and empirical P(y, z) = #{i: y_i = y, z_i = z} / N,

    NCE = -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z)   (natural log, so it lies in [-log C, 0]).

0 means Z determines Y; -log C means Z says nothing about a uniform Y. Both label sets may be any
hashable values.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import encode_labels, encode_source_labels


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    """-H(Y | Z) for source ``source_labels`` (N,) and target ``labels`` (N,); higher is better."""
    y = encode_labels(labels)
    z = encode_source_labels(source_labels, y.shape[0])
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0 / y.shape[0])
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0  # 0 log 0 = 0
    return float(np.sum(joint[nz] * np.log((joint / p_z)[nz])))
