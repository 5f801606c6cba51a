"""The officers' console: one page for the people who run the programme (agency makers and
checkers, post-office staff, commune officials, leaders, administrators), with work queues by
role. It holds no logic of its own: every figure and every action is a call, with the signed-in
person's bearer token, to intake's, payout's and reporting's APIs."""

from services.console.router import ConsoleConfig, console_router

__all__ = ["ConsoleConfig", "console_router"]
