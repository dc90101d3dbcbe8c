"""`python -m hebbian_es.select ...`: select a run's checkpoint by validation (hebbian_es.run.selection)."""

from hebbian_es.run.selection import main

if __name__ == "__main__":
    main()
