"""What shows things: text and PNG renderings of puzzles (`hrm show`, `hrm inspect`)."""
