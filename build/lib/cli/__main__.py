"""`python -m cli ...`"""

from cli.commands import main

main()
