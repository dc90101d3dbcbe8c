"""`python -m hebbian_es.report sweep=<dir> ...`"""

from hebbian_es.report.cli import main

main()
