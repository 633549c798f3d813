#include "attribution/AttributionGraph.h"

namespace cs {

const char* nodeKindName(NodeKind k) {
    switch (k) {
        case NodeKind::Feature: return "feature";
        case NodeKind::Error: return "error";
        case NodeKind::Embedding: return "embedding";
        case NodeKind::Logit: return "logit";
    }
    return "feature";
}

int AttributionGraph::findNode(const std::string& nodeId) const {
    // Linear: callers that look up many ids build their own map (GraphJson does).
    for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].id == nodeId) return static_cast<int>(i);
    return -1;
}

}  // namespace cs
