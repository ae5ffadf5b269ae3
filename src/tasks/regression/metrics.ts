// Regression metrics (R², MAE, RMSE) as train reports them and evaluate gates on them.

export interface RegressionMetrics {
  r2: number;
  mae: number;
  rmse: number;
  n: number;
}

export function regressionMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): RegressionMetrics {
  const n = yTrue.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yTrue[i]! / n;
  let ssRes = 0, ssTot = 0, abs = 0;
  for (let i = 0; i < n; i++) {
    const e = yTrue[i]! - yPred[i]!;
    ssRes += e * e;
    ssTot += (yTrue[i]! - mean) ** 2;
    abs += Math.abs(e);
  }
  return { r2: ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : 0, mae: abs / n, rmse: Math.sqrt(ssRes / n), n };
}
