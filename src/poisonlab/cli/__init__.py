"""The command line: ``poisonlab demo | attack | reproduce | datasets``."""
