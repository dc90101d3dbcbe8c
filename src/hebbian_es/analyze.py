"""`python -m hebbian_es.analyze ...`: kept for the documented command; the app is hebbian_es.analysis.cli."""

from hebbian_es.analysis.cli import main

if __name__ == "__main__":
    main()
