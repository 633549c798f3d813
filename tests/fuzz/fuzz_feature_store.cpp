// The feature store opened on a foreign or corrupt SQLite file, read-only as the browser opens
// it, then read the way the dashboard reads it.
#include <cstdio>

#include "FuzzInput.h"
#include "store/FeatureStore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = csfuzz::writeFile("features.db", data, size);
    // A WAL or journal left from an earlier input would be applied to this one.
    std::remove((path + "-wal").c_str());
    std::remove((path + "-shm").c_str());
    std::remove((path + "-journal").c_str());
    try {
        (void)cs::FeatureStore::isBlank(path);
        cs::FeatureStore store(path, cs::FeatureStore::Mode::ReadOnly);
        (void)store.meta("model");
        (void)store.isComplete();
        for (const cs::StoredSae& sae : store.saes()) {
            auto sums = store.summaries(sae.id);
            for (long i : {0L, 1L, static_cast<long>(sums.size()) - 1}) {
                if (i < 0) continue;
                try {
                    (void)store.feature(sae.id, i);
                    (void)store.label(sae.id, i);
                } catch (const std::exception& e) {
                    csfuzz::note(e.what());
                }
            }
            (void)store.searchLabels(sae.id, "the", 5);
            (void)store.searchToken(sae.id, 1, 5);
        }
        (void)store.piece(0);
        (void)store.tokenIdFor("the");
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
