"""`python -m hebbian_es.evaluate ...`: kept for the documented command; the app is hebbian_es.run.evaluate."""

from hebbian_es.run.evaluate import main

if __name__ == "__main__":
    main()
