"""Field encryption at rest: per-user data keys in a key store, sealed records in every
store outside the process, crypto-shredding on ``forget_user``."""
