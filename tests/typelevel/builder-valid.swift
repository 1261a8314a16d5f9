// Each address once: compiles.
import TracefoldTracing

func valid(spanID: String) {
    metadata("a").update(["k": 1])
    metadata("b").trace().update(["k": 1], kind: "billing")
    metadata("c").observation().update(["k": 1])
    metadata("d").span(spanID).update(["k": 1])
    metadata("e").trace().do { batch in batch.update(["k": 1]) }
}
