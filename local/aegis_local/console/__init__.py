"""The browser console's local side: its build (`build`), the roles and API scopes it shows, generated from
template.yaml (`roles`), and the loopback server that serves it with its runtime config (`server`)."""
