"""The container entrypoint's stable name (``contract.ENTRYPOINT``): ``python -m`` this module.

Images run ``python -m turing_scoring_server.container serve``; the supervisor itself lives in
:mod:`turing_scoring_server.supervisor.entrypoint`. This module only keeps the name the contract
promises, so images built against any 1.x contract keep starting.
"""

import sys

from turing_scoring_server.supervisor.entrypoint import main

if __name__ == "__main__":
    sys.exit(main())
