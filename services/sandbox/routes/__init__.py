"""The sandbox's HTTP API, one router per kind of counterparty: the NAPAS-style JSON bank
(`napas`), the ISO 20022 file bank (`iso`), the post office (`vnpost`), and the test control
(`control`: accounts, faults, ledger, reset)."""
