// expected-error: requires the types 'Addressed' and 'Unaddressed' be equivalent
import TracefoldTracing

func invalid() { metadata("x").trace().trace().update(["k": 1]) }
