// expected-error: requires the types 'Addressed' and 'Unaddressed' be equivalent
import TracefoldTracing

func invalid(spanID: String) { metadata("x").trace().span(spanID).update(["k": 1]) }
