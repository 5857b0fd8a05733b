"""A ticket's body, one component for the two pages that show a ticket with its actions: the
ISP's page through its signed link (netwatch.web.isp, /t/{id}) and the provincial IT's view
(netwatch.web.admin, /admin/tickets/{id}).

model.py: what the body shows, as values (the link's latest round, the evidence, the path and
the log in words); words.py: every word of it (vi/en); pages.py: the `TicketBody` a page is
given and the `CONTEXT` its template needs; templates/ticket.html: the macros (`css`, `body`,
`forms`) a page imports, so the body is rendered once, with the page. Neither page imports the
other (an import contract in pyproject.toml says so).
"""
