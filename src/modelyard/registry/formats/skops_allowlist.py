"""The types an untrusted skops file may need beyond skops' own trusted defaults.

skops already trusts, by exact name, the public scikit-learn estimators, numpy and scipy
ufuncs, numpy arrays, dtypes and bit generators, scipy sparse matrices, builtin
containers and most scikit-learn loss objects. What a fitted model needs on top of that
is listed here, one exact qualified name at a time: a name is never trusted for the
module it lives in, because numpy, scipy and scikit-learn also hold functions that run
code (``numpy.testing._private.utils.runstring`` calls ``exec``) or touch files.

The list was drawn from what ``skops.io.get_untrusted_types`` reports for every
estimator of ``sklearn.utils.all_estimators()`` and for common fitted pipelines
(scikit-learn 1.9, skops 0.16), then reviewed by hand. Left out on purpose: anything
from a testing module; functions that evaluate, import or touch files or the OS;
``PyFuncDistance64`` (calls a Python function); ``MahalanobisDistance64`` (only one side
of its matrix is checked against the data) and ``SEuclideanDistance64`` (both need a
matrix or vector the user fitted elsewhere); types only exotic estimators need
(``BisectingKMeans``' tree, sparse random projections). A model that needs one of those loads with
``trusted_types=[...]`` naming it.

The rule for an addition: skops may call any listed name with arguments taken from the
file (a reduce node, or a list node of that "type"), so a name is listed only if calling
it with any arguments just computes and returns, touching no file, module or process
state. Functions are listed only when a fitted estimator keeps them as a parameter (a
score function, a pooling function).
"""

from __future__ import annotations

ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        # Fitted tree structure (DecisionTree*, RandomForest*, ExtraTrees*, Bagging*,
        # AdaBoost*, GradientBoosting*, HistGradientBoosting*). skops leaves both out of
        # its defaults because their node indices are not bounds-checked by
        # scikit-learn; modelyard checks them after loading (see ``fitted_trees``).
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # HistGradientBoosting fitted on a DataFrame keeps
        # ``functools.partial(check_array, ...)`` to convert its input.
        "functools.partial",
        "sklearn.utils.validation.check_array",
        # The two TweedieRegressor losses skops does not list (log and identity link).
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
        # Neighbour search structures of KNeighbors*, RadiusNeighbors*, NearestNeighbors,
        # LocalOutlierFactor, KernelDensity (bounds-checked after loading, like the trees
        # above), and their metrics: parameter-free, or Minkowski's p and optional weight
        # vector, whose length scikit-learn checks against the data.
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.BrayCurtisDistance64",
        "sklearn.metrics._dist_metrics.CanberraDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.metrics._dist_metrics.DiceDistance64",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.HammingDistance64",
        "sklearn.metrics._dist_metrics.HaversineDistance64",
        "sklearn.metrics._dist_metrics.JaccardDistance64",
        "sklearn.metrics._dist_metrics.KulsinskiDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MatchingDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.RogersTanimotoDistance64",
        "sklearn.metrics._dist_metrics.RussellRaoDistance64",
        "sklearn.metrics._dist_metrics.SokalMichenerDistance64",
        "sklearn.metrics._dist_metrics.SokalSneathDistance64",
        # Univariate score functions of SelectKBest, SelectPercentile,
        # GenericUnivariateSelect, SelectFpr/Fdr/Fwe (pure computation on X, y).
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        # FeatureAgglomeration's default pooling function (not a ufunc, so not a skops
        # default).
        "numpy.mean",
        # dtypes kept by SimpleImputer, KBinsDiscretizer, make_column_selector
        # (``dtype_include=object`` or ``np.number``).
        "builtins.object",
        "numpy.dtype",
        "numpy.number",
        "sklearn.compose._column_transformer.make_column_selector",
        # Preprocessing internals: SplineTransformer's B-splines (and the asarray they
        # keep), IterativeImputer (experimental, so outside all_estimators) and its
        # per-feature records.
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "scipy.interpolate._bsplines.BSpline",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.impute._iterative._ImputerTriplet",
        # Fitted sub-objects of ensembles, calibration, neural networks and Gaussian
        # processes: named estimators of Voting*/Stacking*, calibrators, optimisers.
        "sklearn.utils._bunch.Bunch",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        # Gaussian process kernels (parameters and hyperparameters only; PairwiseKernel
        # with a callable metric still needs that callable trusted).
        "sklearn.gaussian_process.kernels.CompoundKernel",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.DotProduct",
        "sklearn.gaussian_process.kernels.ExpSineSquared",
        "sklearn.gaussian_process.kernels.Exponentiation",
        "sklearn.gaussian_process.kernels.Matern",
        "sklearn.gaussian_process.kernels.PairwiseKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.gaussian_process.kernels.RationalQuadratic",
        "sklearn.gaussian_process.kernels.Sum",
        "sklearn.gaussian_process.kernels.WhiteKernel",
        # Hyper-parameter search: the searches skops does not list (experimental), the
        # cross-validation splitters they keep, and their routing metadata.
        "sklearn.model_selection._search_successive_halving.HalvingGridSearchCV",
        "sklearn.model_selection._search_successive_halving.HalvingRandomSearchCV",
        "sklearn.model_selection._split.GroupKFold",
        "sklearn.model_selection._split.GroupShuffleSplit",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.LeaveOneGroupOut",
        "sklearn.model_selection._split.LeaveOneOut",
        "sklearn.model_selection._split.PredefinedSplit",
        "sklearn.model_selection._split.RepeatedKFold",
        "sklearn.model_selection._split.RepeatedStratifiedKFold",
        "sklearn.model_selection._split.ShuffleSplit",
        "sklearn.model_selection._split.StratifiedGroupKFold",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.model_selection._split.StratifiedShuffleSplit",
        "sklearn.model_selection._split.TimeSeriesSplit",
        "sklearn.model_selection._split._CVIterableWrapper",
        "sklearn.utils._metadata_requests.MetadataRequest",
        "sklearn.utils._metadata_requests.MethodMetadataRequest",
        # Scorers kept by *SearchCV, early-stopping HistGradientBoosting and
        # TunedThresholdClassifierCV, and the metric function behind each name of
        # ``sklearn.metrics.get_scorer_names()`` (pure computation on y_true, y_pred).
        "sklearn.metrics._scorer._CurveScorer",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._scorer.negative_likelihood_ratio",
        "sklearn.metrics._scorer.positive_likelihood_ratio",
        "sklearn.metrics._classification.accuracy_score",
        "sklearn.metrics._classification.balanced_accuracy_score",
        "sklearn.metrics._classification.brier_score_loss",
        "sklearn.metrics._classification.d2_brier_score",
        "sklearn.metrics._classification.d2_log_loss_score",
        "sklearn.metrics._classification.f1_score",
        "sklearn.metrics._classification.jaccard_score",
        "sklearn.metrics._classification.log_loss",
        "sklearn.metrics._classification.matthews_corrcoef",
        "sklearn.metrics._classification.precision_score",
        "sklearn.metrics._classification.recall_score",
        "sklearn.metrics._ranking.average_precision_score",
        "sklearn.metrics._ranking.roc_auc_score",
        "sklearn.metrics._ranking.top_k_accuracy_score",
        "sklearn.metrics._regression.d2_absolute_error_score",
        "sklearn.metrics._regression.explained_variance_score",
        "sklearn.metrics._regression.max_error",
        "sklearn.metrics._regression.mean_absolute_error",
        "sklearn.metrics._regression.mean_absolute_percentage_error",
        "sklearn.metrics._regression.mean_gamma_deviance",
        "sklearn.metrics._regression.mean_poisson_deviance",
        "sklearn.metrics._regression.mean_squared_error",
        "sklearn.metrics._regression.mean_squared_log_error",
        "sklearn.metrics._regression.median_absolute_error",
        "sklearn.metrics._regression.r2_score",
        "sklearn.metrics._regression.root_mean_squared_error",
        "sklearn.metrics._regression.root_mean_squared_log_error",
        "sklearn.metrics.cluster._supervised.adjusted_mutual_info_score",
        "sklearn.metrics.cluster._supervised.adjusted_rand_score",
        "sklearn.metrics.cluster._supervised.completeness_score",
        "sklearn.metrics.cluster._supervised.fowlkes_mallows_score",
        "sklearn.metrics.cluster._supervised.homogeneity_score",
        "sklearn.metrics.cluster._supervised.mutual_info_score",
        "sklearn.metrics.cluster._supervised.normalized_mutual_info_score",
        "sklearn.metrics.cluster._supervised.rand_score",
        "sklearn.metrics.cluster._supervised.v_measure_score",
    }
)
