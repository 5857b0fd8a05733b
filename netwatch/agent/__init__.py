"""The commune agent (issue 11): a small process in the commune centre that measures from inside
and carries its rounds home through outages (docs/agent.md). ``model`` is its contract with the
centre; the centre's side is ``netwatch.inside``."""
