"""Data the payout loads: the demo's funds envelopes."""
