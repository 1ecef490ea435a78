"""Reports from the results store: summaries, ranking, leaderboards, paper tables, exports, the HTML page."""
