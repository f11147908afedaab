{{ validate_positions(source('core_banking', 'positions_deposits')) }}
