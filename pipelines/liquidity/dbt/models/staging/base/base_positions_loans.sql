{{ validate_positions(source('loan_system', 'positions_loans')) }}
