"""The web app's routers, one per area: `account` (login, logout, home), `queue`, `case`, `search` (and its
exports), `dashboard`, `quality` and `audit`. Every route but the account's takes the user as `Me` or
`Searcher` (risk.web.deps): nobody logged in is sent to the login page (tests/web/test_security.py checks
every route of the app)."""
