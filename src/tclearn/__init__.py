"""TCLearn: trusted coalitions for blockchained distributed learning."""
__version__ = "0.1.0"
