"""Intelligence for partners: smuggling networks, price and modus-operandi trends, and
alerts when something new appears."""
