"""The printable monthly report: what the admin page shows and the PDF prints (issue 13)."""
