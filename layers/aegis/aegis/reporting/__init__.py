"""Mission reports: the document the agent stores (`agent_report`), the page people read (`html`) and how that page
is assembled from the stored documents and the audit trail (`assembly`); an organization scan's summary over its
accounts' missions (`organization`)."""
