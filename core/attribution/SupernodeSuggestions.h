#pragma once
// Supernodes proposed automatically: features that read from the same nodes and write to the same
// nodes play one role in the circuit ("say Lily" at three positions, two features that both
// suppress a token), so their edge profiles are alike. Each feature's profile is its signed link
// weights keyed by the node at the other end, inputs and outputs each scaled to unit length and
// weighed equally; features are grouped by average-linkage agglomerative clustering on the cosine
// similarity of their profiles, until no two groups are at least `minSimilarity` alike.
#include "attribution/AttributionGraph.h"

#include <cstddef>
#include <string>
#include <vector>

namespace cs {

struct SuggestionOptions {
    // Two groups merge while the mean similarity of their members' profiles is at least this.
    double minSimilarity = 0.7;
    // Added to the similarity of one feature (same layer and index) at two positions, capped at 1:
    // the same feature firing along the prompt is usually one role, but only with like edges.
    double sameFeatureBonus = 0.15;
    // The most influential feature nodes considered; clustering costs O(n^2) memory and O(n^3) time.
    size_t maxNodes = 400;
    size_t maxGroupSize = 12;
    size_t maxSuggestions = 20;
};

struct SupernodeSuggestion {
    std::vector<int> members;  // feature node indices into g.nodes, most influential first
    double score = 0;          // the members' mean pairwise similarity (bonus included), in [minSimilarity, 1]
    std::string label;         // proposeSupernodeLabel of the members
};

// Cosine similarity of two nodes' edge profiles (no bonus); 0 when either has no links.
double edgeProfileSimilarity(const AttributionGraph& g, int a, int b);

// A label for a group: the words (of three letters or more, lower-cased, split at anything but
// letters and digits, "peak" and "logits" of automatic labels skipped) found in at least half of
// the members' labels and in two of them at least, most shared first, at most three, joined by
// ", ". Words before a "|" are tried first (an automatic label's "peak: ..." part, what the
// feature fires on), then those after it ("logits: ...", what it promotes). Else the most
// influential member's label; else "L{layer} #{feature}" of that member.
std::string proposeSupernodeLabel(const AttributionGraph& g, const std::vector<int>& members);

// Groups of two or more feature nodes, best score first (ties: larger first). Nodes already in one
// of g.supernodes are left out, so a suggestion taken drops out of the next list. Throws nothing;
// a graph without links gives none.
std::vector<SupernodeSuggestion> suggestSupernodes(const AttributionGraph& g, const SuggestionOptions& o = {});

}  // namespace cs
