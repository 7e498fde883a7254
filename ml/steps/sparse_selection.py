"""The sparse algebra of train-model's tfidf-linear trainer: the chi2 column choice and
the folding of that choice into the fitted TF-IDF and linear model.

Part of train.py's code bundle (numpy, scipy, scikit-learn).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC


def best_columns(counts: sp.csr_matrix, labels: np.ndarray, k: int) -> np.ndarray:
    """The (sorted) indices of the k columns with the highest chi2 statistic vs the labels.

    The statistic of scikit-learn's `chi2`, computed sparsely: it builds dense
    classes x 2**hash_bits observed and expected matrices (~1 GB of temporaries at
    2**20 columns and 40 classes); here only the (class, column) pairs that occur are
    held, using sum_k (O - E)**2 / E = sum_k O**2 / E - f, since the observed and
    expected counts of a column both sum to its total count f. Ties are broken as
    SelectKBest does (stable sort); columns that never occur are not chosen.
    """
    classes, y = np.unique(labels, return_inverse=True)
    n_rows, width = counts.shape
    one_hot = sp.csr_matrix((np.ones(n_rows), (y, np.arange(n_rows))), shape=(len(classes), n_rows))
    observed = (one_hot @ counts).tocoo()
    total = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
    class_share = np.bincount(y) / n_rows
    expected = class_share[observed.row] * total[observed.col]
    terms = np.asarray(observed.data, dtype=np.float64) ** 2 / expected
    scores = np.bincount(observed.col, weights=terms, minlength=width) - total
    best = np.argsort(scores, kind="mergesort")[-k:]
    return np.sort(best[total[best] > 0])


def compact(
    hashing: HashingVectorizer,
    tfidf: TfidfTransformer,
    classifier: LinearSVC,
    columns: np.ndarray,
) -> Pipeline:
    """The fitted steps as hashing -> TF-IDF -> linear model over all hashed columns.

    The column selection is folded into the other two: an idf of 0 outside the
    chosen columns (they vanish before the L2 norm, so the norm is the selected
    columns' own) and sparse weights that exist only on chosen columns. Scores are
    the same as hashing -> select -> TF-IDF -> LinearSVC, without the selection's
    ~2 ms per request of masking 2**hash_bits columns. The weights are a CSC
    matrix (classes x columns) so that `coef_.T`, what decision_function multiplies
    by, is CSR: a sparse row times CSR, no conversion per request.
    """
    width = hashing.n_features
    idf = np.zeros(width, dtype=tfidf.idf_.dtype)
    idf[columns] = tfidf.idf_
    folded_tfidf = TfidfTransformer(sublinear_tf=True)
    folded_tfidf.idf_ = idf
    folded_tfidf.n_features_in_ = width
    # Weights over the chosen columns, re-indexed to their hashed columns (no dense
    # classes x 2**hash_bits matrix at any point).
    weights = sp.csr_matrix(classifier.coef_.astype(np.float32))
    weights = sp.csr_matrix(
        (weights.data, columns[weights.indices], weights.indptr),
        shape=(weights.shape[0], width),
    )
    classifier.coef_ = weights.tocsc()
    classifier.n_features_in_ = width
    return Pipeline([("hashing", hashing), ("tfidf", folded_tfidf), ("classifier", classifier)])
