#pragma once
// Field-by-field equality of steering rows and plans, shared by the steering tests (a preset or a
// session must bring every field back).
#include "steer/SteeringRule.h"

#include <ATen/ATen.h>
#include <QtTest>

namespace cstest {

inline void compareSteeringRules(const cs::SteeringRule& a, const cs::SteeringRule& b) {
    QCOMPARE(a.isVector(), b.isVector());
    QCOMPARE(a.saeId, b.saeId);
    QCOMPARE(a.feature, b.feature);
    QCOMPARE(a.vectorName, b.vectorName);
    QCOMPARE(a.hook, b.hook);
    QCOMPARE(a.direction.defined(), b.direction.defined());
    if (a.direction.defined()) QVERIFY(at::equal(a.direction.to(at::kFloat), b.direction.to(at::kFloat)));
    QCOMPARE(a.mode, b.mode);
    QCOMPARE(a.value, b.value);
    QCOMPARE(a.positions.toString(), b.positions.toString());
    QCOMPARE(a.enabled, b.enabled);
    QCOMPARE(a.conditional, b.conditional);
    QCOMPARE(a.label, b.label);
    QCOMPARE(a.unit, b.unit);
}

}  // namespace cstest
