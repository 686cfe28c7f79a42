"""What the terminal shows: leaderboard rows, the live search view, tables, and the terminal itself."""
