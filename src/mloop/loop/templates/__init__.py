"""Pipeline templates users copy and edit (``mloop loop template``): ``retrain`` is the standard
retraining pipeline of the closed loop."""
