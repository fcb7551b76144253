"""Reports: pure views of run records and comparisons. Run tables (`runs`), the comparison data model and its
renderings (`comparison`, `tables`), the HTML page (`html`), the leaderboard, exports to other tools' formats
(`exports`) and published numbers (`published`)."""
