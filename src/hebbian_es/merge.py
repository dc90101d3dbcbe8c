"""`python -m hebbian_es.merge run=<dir> k=<K> ...`: the app is hebbian_es.run.merge (evolve, then merge)."""

from hebbian_es.run.merge import main

if __name__ == "__main__":
    main()
