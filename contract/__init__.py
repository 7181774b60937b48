"""The contract: every name and shape that crosses a process boundary, in one home.

Redis keys and their lifetimes (`contract.keys`), the live events and state pages receive
(`contract.events`, pydantic models whose JSON schema the page's TypeScript types are generated
from), and the names the host and pages share in the LiveKit room (`contract.room`). The host,
the API and the command line import from here; nothing here imports them.
"""
