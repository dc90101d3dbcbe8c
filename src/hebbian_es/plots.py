"""`python -m hebbian_es.plots OUT.png NAME=RUN_DIR ...`: kept for the documented command; the app is hebbian_es.report.compare."""

from hebbian_es.report.compare import main

if __name__ == "__main__":
    main()
