"""Reports: report.json (the contract), report.md (the PR comment), report.html."""
