// Attribution graphs in Neuronpedia's graph JSON, with our metadata.circuitscope extras.
#include "FuzzInput.h"
#include "attribution/GraphJson.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        cs::AttributionGraph g = cs::loadGraph(csfuzz::writeFile("graph.json", data, size));
        (void)cs::graphToJson(g).dump();  // a graph that loaded must also save
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
