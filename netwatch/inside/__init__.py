"""The centre's side of the commune agents (issue 11): what they report, as the core and the web
workers hold it (docs/agent.md). The agent box's side is ``netwatch.agent``."""
