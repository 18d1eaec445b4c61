"""The Textual UI: the only package that imports Textual.

`app.EventApp` is the screen; `feeds/` defines where its events come from; `launch` wires a
collector, a store and the app together for `watch`, `demo` and `open`. Widgets live in
`widgets/`, screens in `screens/`, and every widget that shows event data goes through
`sanitize`.
"""
