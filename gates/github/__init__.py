"""GitHub: posting reports (github3.py against github.com or Enterprise)."""
