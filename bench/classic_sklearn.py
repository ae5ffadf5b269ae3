# scikit-learn reference for `npm run bench -- classic`: fits SVC (libsvm) one-vs-one, one-vs-rest SVCs and
# LogisticRegression(lbfgs) on the data bench/classic.ts wrote, and prints one JSON document of figures.
# Usage: python3 bench/classic_sklearn.py DIR   (DIR holds meta.json, xtr.f64, ytr.i32, xte.f64, yte.i32)
import json
import os
import sys
import time

import numpy as np
import sklearn
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC


def timed(fit):
    wall, cpu = time.perf_counter(), time.process_time()
    model = fit()
    return model, time.perf_counter() - wall, time.process_time() - cpu


def main(folder):
    meta = json.load(open(os.path.join(folder, 'meta.json')))
    n, nte, d = meta['trainRows'], meta['testRows'], meta['features']
    X = np.fromfile(os.path.join(folder, 'xtr.f64')).reshape(n, d)
    y = np.fromfile(os.path.join(folder, 'ytr.i32'), dtype=np.int32)
    Xt = np.fromfile(os.path.join(folder, 'xte.f64')).reshape(nte, d)
    yt = np.fromfile(os.path.join(folder, 'yte.i32'), dtype=np.int32)
    svc = dict(C=meta['C'], kernel='rbf', gamma=meta['gamma'], tol=meta['tol'], cache_size=meta['cacheMb'], shrinking=True)
    out = {'sklearn': sklearn.__version__, 'numpy': np.__version__, 'cases': {}}
    if 'ovo' in meta['cases']:
        m, wall, cpu = timed(lambda: SVC(decision_function_shape='ovo', **svc).fit(X, y))
        out['cases']['ovo'] = {'wall': wall, 'cpu': cpu, 'supportVectors': int(m.n_support_.sum()),
                               'machineSupportVectors': None, 'iterations': int(np.sum(m.n_iter_)),
                               'accuracy': float((m.predict(Xt) == yt).mean())}
    if 'ovr' in meta['cases']:
        m, wall, cpu = timed(lambda: OneVsRestClassifier(SVC(**svc)).fit(X, y))
        union = set()
        for e in m.estimators_:
            union.update(e.support_.tolist())
        out['cases']['ovr'] = {'wall': wall, 'cpu': cpu, 'supportVectors': len(union),
                               'machineSupportVectors': [int(e.n_support_.sum()) for e in m.estimators_],
                               'iterations': int(sum(int(np.sum(e.n_iter_)) for e in m.estimators_)),
                               'accuracy': float((m.predict(Xt) == yt).mean())}
    if 'logistic' in meta['cases']:
        # C·Σ cross-entropy + ½‖W‖², i.e. mlctl's mean cross-entropy + λ/2‖W‖² with λ = 1/(C·n).
        m, wall, cpu = timed(lambda: LogisticRegression(C=meta['logisticC'], solver='lbfgs', tol=meta['logisticTol'],
                                                        max_iter=meta['logisticMaxIter']).fit(X, y))
        lam = 1.0 / (meta['logisticC'] * n)
        Z = X @ m.coef_.T + m.intercept_
        loss = float(np.mean(logsumexp(Z, axis=1) - Z[np.arange(n), y]) + lam / 2 * np.sum(m.coef_ ** 2))
        out['cases']['logistic'] = {'wall': wall, 'cpu': cpu, 'loss': loss, 'iterations': int(np.max(m.n_iter_)),
                                    'accuracy': float((m.predict(Xt) == yt).mean())}
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main(sys.argv[1])
