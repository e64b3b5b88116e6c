"""Parts every method shares; this package imports no method (``meta_train.<method>``)."""
