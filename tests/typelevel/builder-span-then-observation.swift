// expected-error: requires the types 'Addressed' and 'Unaddressed' be equivalent
import TracefoldTracing

func invalid(spanID: String) { metadata("x").span(spanID).observation().update(["k": 1]) }
