#pragma once
// QCustomPlot's header uses Qt's lower-case keywords (signals, emit, foreach), which this project
// switches off (QT_NO_KEYWORDS: LibTorch headers use `slots` as an identifier). Include it
// through here: the keywords exist only while the header is read.
#if defined(QT_NO_KEYWORDS) && !defined(signals)
#define CS_QCP_KEYWORDS
#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#endif
#include <qcustomplot.h>
#ifdef CS_QCP_KEYWORDS
#undef signals
#undef slots
#undef emit
#undef foreach
#undef CS_QCP_KEYWORDS
#endif
