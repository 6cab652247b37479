"""Reading finished and running runs: their curves (`hrm show RUN`) and comparisons (`hrm compare`)."""
