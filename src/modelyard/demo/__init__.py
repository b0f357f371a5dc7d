"""The retail demand-forecasting demo (``modelyard demo``), one stage per module.

``data`` generates the sales history; ``features`` defines the feature store's view;
``training`` sweeps and cross-validates; ``build`` takes a model from data to approval;
``rollout`` moves traffic; ``traffic`` runs the data plane and the shop that calls it;
``watch`` monitors; ``retrain`` starts the shipped retraining pipeline from an alert;
``story`` prints progress; ``summary`` the end; ``run`` tells the story in order.
"""
